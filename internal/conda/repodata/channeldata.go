package repodata

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"

	"github.com/sparkenv/sparkenv/internal/fsutil"
)

// Channeldata is channeldata.json at a channel's root (CEP 38).
type Channeldata struct {
	ChanneldataVersion int                       `json:"channeldata_version"`
	Packages           map[string]ChannelPackage `json:"packages"`
	Subdirs            []string                  `json:"subdirs"`
}

// ChannelPackage is one package name's entry in channeldata.json. Fields are
// declared in key order so that encoding/json writes sorted keys.
type ChannelPackage struct {
	ActivateD    bool                       `json:"activate.d"`
	BinaryPrefix bool                       `json:"binary_prefix"`
	DeactivateD  bool                       `json:"deactivate.d"`
	DevURL       string                     `json:"dev_url,omitempty"`
	DocURL       string                     `json:"doc_url,omitempty"`
	Home         string                     `json:"home,omitempty"`
	License      string                     `json:"license,omitempty"`
	PostLink     bool                       `json:"post_link"`
	PreLink      bool                       `json:"pre_link"`
	PreUnlink    bool                       `json:"pre_unlink"`
	RunExports   map[string]json.RawMessage `json:"run_exports"`
	SourceURL    StringList                 `json:"source_url,omitempty"`
	Subdirs      []string                   `json:"subdirs"`
	Summary      string                     `json:"summary,omitempty"`
	TextPrefix   bool                       `json:"text_prefix"`
	Timestamp    int64                      `json:"timestamp"` // seconds
	Version      string                     `json:"version"`
}

// StringList is a JSON string or list of strings; one element is written as
// a plain string.
type StringList []string

// MarshalJSON writes one element as a string, more as a list.
func (l StringList) MarshalJSON() ([]byte, error) {
	if len(l) == 1 {
		return json.Marshal(l[0])
	}
	return json.Marshal([]string(l))
}

// UnmarshalJSON accepts a string, a list of strings or null.
func (l *StringList) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*l = StringList{s}
		return nil
	}
	var list []string
	if err := json.Unmarshal(b, &list); err != nil {
		return fmt.Errorf("want a string or a list of strings, got %s", b)
	}
	*l = list
	return nil
}

// ChanneldataOptions carries what records alone do not say.
type ChanneldataOptions struct {
	// Subdirs the channel serves even without packages (noarch always is).
	Subdirs []string
	// Meta gives each name's descriptive fields and flags (from the
	// packages' info/ files); Subdirs, Timestamp and Version are computed
	// and override what Meta says, License defaults to the latest record's.
	Meta map[string]ChannelPackage
	// CompareVersions orders conda versions (CEP 33); nil uses a built-in
	// ordering.
	CompareVersions func(a, b string) int
}

// BuildChanneldata computes channeldata from the records of all subdirs.
func BuildChanneldata(records []Record, opts ChanneldataOptions) *Channeldata {
	cmp := opts.CompareVersions
	if cmp == nil {
		cmp = compareVersions
	}
	cd := &Channeldata{ChanneldataVersion: 1, Packages: map[string]ChannelPackage{}}
	all := map[string]bool{"noarch": true}
	for _, s := range opts.Subdirs {
		all[s] = true
	}
	type acc struct {
		latest  *Record
		subdirs map[string]bool
		ts      int64
	}
	accs := map[string]*acc{}
	for i := range records {
		r := &records[i]
		if r.Subdir != "" {
			all[r.Subdir] = true
		}
		a := accs[r.Name]
		if a == nil {
			a = &acc{subdirs: map[string]bool{}}
			accs[r.Name] = a
		}
		if r.Subdir != "" {
			a.subdirs[r.Subdir] = true
		}
		a.ts = max(a.ts, r.Timestamp/1000)
		if a.latest == nil {
			a.latest = r
			continue
		}
		c := cmp(r.Version, a.latest.Version)
		if c > 0 || c == 0 && (r.Timestamp > a.latest.Timestamp ||
			r.Timestamp == a.latest.Timestamp && r.FileName > a.latest.FileName) {
			a.latest = r
		}
	}
	for name, a := range accs {
		p := opts.Meta[name]
		p.Subdirs = sortedKeys(a.subdirs)
		p.Timestamp = a.ts
		p.Version = a.latest.Version
		if p.License == "" {
			p.License = a.latest.License
		}
		if p.RunExports == nil {
			p.RunExports = map[string]json.RawMessage{}
		}
		cd.Packages[name] = p
	}
	cd.Subdirs = sortedKeys(all)
	return cd
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// MarshalChanneldata encodes channeldata deterministically: sorted keys,
// two-space indentation, no HTML escaping.
func MarshalChanneldata(cd *Channeldata) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(cd); err != nil {
		return nil, fmt.Errorf("channeldata: %w", err)
	}
	return buf.Bytes(), nil
}

// ParseChanneldata reads channeldata.json.
func ParseChanneldata(data []byte) (*Channeldata, error) {
	var cd Channeldata
	if err := json.Unmarshal(data, &cd); err != nil {
		return nil, fmt.Errorf("channeldata: %w", err)
	}
	return &cd, nil
}

// WriteChanneldata writes <root>/channeldata.json atomically.
func WriteChanneldata(root string, records []Record, opts ChanneldataOptions) error {
	data, err := MarshalChanneldata(BuildChanneldata(records, opts))
	if err != nil {
		return err
	}
	if err := fsutil.WriteFile(filepath.Join(root, "channeldata.json"), data, 0o644); err != nil {
		return fmt.Errorf("channeldata: %w", err)
	}
	return nil
}
