// Package repodata reads and writes conda channel indexes (CEP 36, CEP 16):
// repodata.json in its plain, zstd and sharded forms. Reading is lenient
// (null depends, timestamps in seconds or milliseconds, missing fields);
// writing is strict and deterministic.
//
// repodata.json is read by a decoder written for its shape (scan.go,
// decode.go, parse.go) rather than by encoding/json, which made reading a
// large channel cost seconds. It must keep accepting and rejecting exactly
// what encoding/json did, never panic and never write to its input: the
// differential fuzz tests hold it to that against the old reader, kept in
// ref_test.go.
package repodata

import "strings"

// Record is one package record of repodata, plus where the package file is.
type Record struct {
	Name                   string   `json:"name"`
	Version                string   `json:"version"`
	Build                  string   `json:"build"`
	BuildNumber            int64    `json:"build_number"`
	Depends                []string `json:"depends"`
	Constrains             []string `json:"constrains,omitempty"`
	License                string   `json:"license,omitempty"`
	LicenseFamily          string   `json:"license_family,omitempty"`
	MD5                    string   `json:"md5,omitempty"`
	SHA256                 string   `json:"sha256,omitempty"`
	Size                   int64    `json:"size,omitempty"`
	Subdir                 string   `json:"subdir,omitempty"`
	Timestamp              int64    `json:"timestamp,omitempty"` // Unix milliseconds
	TrackFeatures          string   `json:"track_features,omitempty"`
	Features               string   `json:"features,omitempty"`
	Noarch                 string   `json:"noarch,omitempty"` // "", "generic" or "python"
	PythonSitePackagesPath string   `json:"python_site_packages_path,omitempty"`

	// Where the package file is; not part of a repodata.json entry.
	FileName string `json:"fn,omitempty"`
	URL      string `json:"url,omitempty"`
	Channel  string `json:"channel,omitempty"`
}

// millisecondsAbove is where a timestamp is taken to be in milliseconds
// rather than seconds (the year 9999 in seconds), as rattler does.
const millisecondsAbove = 253402300799

// UnmarshalJSON reads a record leniently: null depends, a numeric version,
// timestamps in seconds or milliseconds, track_features as a string or a
// list, noarch as a string or a boolean. Unknown keys are ignored; keys
// match case-insensitively, as encoding/json matches struct fields.
func (r *Record) UnmarshalJSON(b []byte) error {
	d := decoder{buf: b, tab: &strtab{}}
	switch d.peek() {
	case 'n':
		if err := d.literal("null"); err != nil {
			return err
		}
		*r = Record{Depends: []string{}}
		return nil
	case '{':
		var rec Record
		if err := d.record(&rec, nil, 0); err != nil {
			return err
		}
		*r = rec
		return nil
	case 0:
		if d.pos >= len(b) {
			return &syntaxError{msg: errEOF.Error(), off: d.pos}
		}
	}
	return d.typeErr(0, "record", "an object")
}

// TrackFeatureList splits track_features (space- or comma-separated).
func (r *Record) TrackFeatureList() []string {
	return strings.FieldsFunc(r.TrackFeatures, func(c rune) bool { return c == ' ' || c == ',' })
}

// DistName is name-version-build, the stem of the package file.
func (r *Record) DistName() string { return r.Name + "-" + r.Version + "-" + r.Build }
