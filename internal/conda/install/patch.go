package install

import (
	"bytes"
	"fmt"
	"path"
	"strings"
)

// maxShebang is the longest shebang line Linux reads (BINPRM_BUF_SIZE 128,
// less the terminating NUL); a longer one is silently truncated.
const maxShebang = 127

// patchText replaces every occurrence of placeholder with prefix.
func patchText(data []byte, placeholder, prefix string) []byte {
	return bytes.ReplaceAll(data, []byte(placeholder), []byte(prefix))
}

// prefixTooLongError is returned by patchBinary when the new prefix does not
// fit in the space of the placeholder.
type prefixTooLongError struct{ prefix, placeholder int }

func (e prefixTooLongError) Error() string {
	return fmt.Sprintf("target prefix (%d bytes) is longer than the binary placeholder (%d bytes); binary files can only be relocated to a prefix of at most %d bytes", e.prefix, e.placeholder, e.placeholder)
}

// patchBinary rewrites, in place, every NUL-terminated string of data that
// contains placeholder: all occurrences are replaced with prefix and the
// string is padded with NULs to its old length, so offsets in the file stay
// valid. It reports whether anything changed.
func patchBinary(data []byte, placeholder, prefix string) (bool, error) {
	ph := []byte(placeholder)
	if len(ph) == 0 {
		return false, nil
	}
	if bytes.IndexByte(ph, 0) >= 0 {
		// A C string cannot contain its own terminator.
		return false, fmt.Errorf("binary placeholder %q contains a NUL byte", placeholder)
	}
	pos := bytes.Index(data, ph)
	if pos < 0 {
		return false, nil
	}
	if len(prefix) > len(ph) {
		return false, prefixTooLongError{len(prefix), len(ph)}
	}
	np := []byte(prefix)
	var seg []byte
	for pos >= 0 {
		end := bytes.IndexByte(data[pos:], 0)
		if end < 0 {
			end = len(data)
		} else {
			end += pos
		}
		// Only the part from the first occurrence to the string's end
		// moves; the bytes before it in the same string stay as they are.
		seg = bytes.ReplaceAll(data[pos:end], ph, np)
		n := copy(data[pos:end], seg)
		clear(data[pos+n : end])
		next := bytes.Index(data[end:], ph)
		if next < 0 {
			break
		}
		pos = end + next
	}
	return true, nil
}

// pythonInterpreter reports whether the base name of an interpreter is a
// python (python, python3, python3.11, python3.13t, pythonw...).
func pythonInterpreter(exe string) bool {
	rest, ok := strings.CutPrefix(path.Base(exe), "python")
	if !ok {
		return false
	}
	for _, c := range rest {
		if !(c >= '0' && c <= '9' || c == '.' || c == 't' || c == 'w' || c == 'm' || c == 'd') {
			return false
		}
	}
	return true
}

// fixShebang rewrites the first line of a script when the kernel could not
// run it: longer than maxShebang bytes, or an interpreter path with a space
// in it. prefix is the installed prefix, which tells where an interpreter
// path inside it ends even when it contains spaces. See the package comment
// for the forms chosen.
func fixShebang(data []byte, prefix string) []byte {
	if !bytes.HasPrefix(data, []byte("#!")) {
		return data
	}
	nl := bytes.IndexByte(data, '\n')
	if nl < 0 {
		nl = len(data)
	}
	// A CRLF line keeps its \r after the rewritten line.
	body := nl
	if nl > 2 && data[nl-1] == '\r' {
		body = nl - 1
	}
	line := string(data[2:body])
	exe, opts := splitShebang(line, prefix)
	if exe == "" {
		return data
	}
	if body <= maxShebang && !strings.ContainsAny(exe, " \t") {
		return data
	}
	var head string
	if pythonInterpreter(exe) && quotable(exe) && plainOptions(opts) {
		o := ""
		if opts != "" {
			o = " " + opts
		}
		head = "#!/bin/sh\n'''exec' \"" + exe + "\"" + o + " \"$0\" \"$@\" #'''"
	} else {
		head = "#!/usr/bin/env " + path.Base(exe)
		if opts != "" {
			head += " " + opts
		}
	}
	out := make([]byte, 0, len(head)+len(data)-body)
	out = append(out, head...)
	return append(out, data[body:]...)
}

// splitShebang splits a shebang line (without #!) into the interpreter and
// its options.
func splitShebang(line, prefix string) (exe, opts string) {
	line = strings.TrimLeft(line, " \t")
	start := 0
	if prefix != "" && strings.HasPrefix(line, prefix+"/") {
		start = len(prefix)
	}
	end := strings.IndexAny(line[start:], " \t")
	if end < 0 {
		return line, ""
	}
	return line[:start+end], strings.TrimSpace(line[start+end:])
}

// quotable reports whether s can stand inside double quotes of a /bin/sh
// line and inside a Python triple-quoted string without changing meaning.
func quotable(s string) bool {
	return !strings.ContainsAny(s, "\"$`\\'\n\r")
}

// plainOptions reports whether interpreter options can be passed unquoted
// through /bin/sh: no globs, quotes, expansions or separators.
func plainOptions(s string) bool {
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune(" -_=.,:/+", c)) {
			return false
		}
	}
	return true
}
