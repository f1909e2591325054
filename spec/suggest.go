package spec

import (
	"fmt"
	"strings"

	"github.com/agext/levenshtein"
)

// Suggest returns the candidate closest to s by edit distance, or "" when
// none is close enough to be a plausible typo. Ties go to the earlier
// candidate so that callers control the preference by ordering.
func Suggest(s string, candidates []string) string {
	if s == "" {
		return ""
	}
	// Short names tolerate fewer edits, or "ab" would suggest every
	// two-letter word.
	limit := 2
	if len([]rune(s)) <= 3 {
		limit = 1
	}
	if len([]rune(s)) >= 10 {
		limit = 3
	}
	best, bestDist := "", limit+1
	for _, c := range candidates {
		if c == s {
			return c
		}
		d := levenshtein.Distance(strings.ToLower(s), strings.ToLower(c), nil)
		if d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// didYouMean renders a suggestion as a sentence to append to a detail, or ""
// when there is none.
func didYouMean(s string, candidates []string) string {
	if sug := Suggest(s, candidates); sug != "" && sug != s {
		return fmt.Sprintf(" Did you mean %q?", sug)
	}
	return ""
}
