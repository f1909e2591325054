// Package repodata reads and writes conda channel indexes (CEP 36, CEP 16):
// repodata.json in its plain, zstd and sharded forms. Reading is lenient
// (null depends, timestamps in seconds or milliseconds, missing fields);
// writing is strict and deterministic.
package repodata

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

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

// UnmarshalJSON reads a record leniently.
func (r *Record) UnmarshalJSON(b []byte) error {
	var raw struct {
		Name                   string          `json:"name"`
		Version                json.RawMessage `json:"version"`
		Build                  string          `json:"build"`
		BuildNumber            json.Number     `json:"build_number"`
		Depends                []string        `json:"depends"`
		Constrains             []string        `json:"constrains"`
		License                *string         `json:"license"`
		LicenseFamily          *string         `json:"license_family"`
		MD5                    *string         `json:"md5"`
		SHA256                 *string         `json:"sha256"`
		Size                   json.Number     `json:"size"`
		Subdir                 *string         `json:"subdir"`
		Timestamp              json.Number     `json:"timestamp"`
		TrackFeatures          json.RawMessage `json:"track_features"`
		Features               json.RawMessage `json:"features"`
		Noarch                 json.RawMessage `json:"noarch"`
		PythonSitePackagesPath *string         `json:"python_site_packages_path"`
		FileName               string          `json:"fn"`
		URL                    string          `json:"url"`
		Channel                string          `json:"channel"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return err
	}
	*r = Record{
		Name:       raw.Name,
		Build:      raw.Build,
		Depends:    raw.Depends,
		Constrains: raw.Constrains,
		FileName:   raw.FileName,
		URL:        raw.URL,
		Channel:    raw.Channel,
	}
	v, err := scalarString(raw.Version)
	if err != nil {
		return fmt.Errorf("version: %w", err)
	}
	r.Version = v
	if r.BuildNumber, err = intOf(raw.BuildNumber); err != nil {
		return fmt.Errorf("build_number: %w", err)
	}
	if r.Size, err = intOf(raw.Size); err != nil {
		return fmt.Errorf("size: %w", err)
	}
	if r.Timestamp, err = intOf(raw.Timestamp); err != nil {
		return fmt.Errorf("timestamp: %w", err)
	}
	if r.Timestamp > 0 && r.Timestamp <= millisecondsAbove {
		r.Timestamp *= 1000
	}
	r.License = deref(raw.License)
	r.LicenseFamily = deref(raw.LicenseFamily)
	r.MD5 = deref(raw.MD5)
	r.SHA256 = deref(raw.SHA256)
	r.Subdir = deref(raw.Subdir)
	r.PythonSitePackagesPath = deref(raw.PythonSitePackagesPath)
	if r.TrackFeatures, err = featureString(raw.TrackFeatures); err != nil {
		return fmt.Errorf("track_features: %w", err)
	}
	if r.Features, err = featureString(raw.Features); err != nil {
		return fmt.Errorf("features: %w", err)
	}
	if r.Noarch, err = noarchOf(raw.Noarch); err != nil {
		return fmt.Errorf("noarch: %w", err)
	}
	if r.Depends == nil {
		r.Depends = []string{}
	}
	return nil
}

// TrackFeatureList splits track_features (space- or comma-separated).
func (r *Record) TrackFeatureList() []string {
	return strings.FieldsFunc(r.TrackFeatures, func(c rune) bool { return c == ' ' || c == ',' })
}

// DistName is name-version-build, the stem of the package file.
func (r *Record) DistName() string { return r.Name + "-" + r.Version + "-" + r.Build }

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func intOf(n json.Number) (int64, error) {
	if n == "" {
		return 0, nil
	}
	if i, err := n.Int64(); err == nil {
		return i, nil
	}
	f, err := n.Float64()
	if err != nil {
		return 0, err
	}
	return int64(f), nil
}

func scalarString(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil {
		return "", fmt.Errorf("want a string, got %s", raw)
	}
	return n.String(), nil
}

func featureString(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return strings.TrimSpace(s), nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil {
		return "", fmt.Errorf("want a string or a list of strings, got %s", raw)
	}
	return strings.Join(list, " "), nil
}

func noarchOf(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var b bool
	if err := json.Unmarshal(raw, &b); err != nil {
		return "", fmt.Errorf("want a string or a boolean, got %s", raw)
	}
	if b {
		return "generic", nil // old-style `"noarch": true`
	}
	return "", nil
}
