package repodata

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
)

// This file keeps the encoding/json based reader that the hand-written one
// replaced. It is the reference of the differential fuzz test: both must
// read the same records from any input, or both fail.

// refRecord is Record with the old lenient UnmarshalJSON.
type refRecord Record

func (r *refRecord) UnmarshalJSON(b []byte) error {
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
	*r = refRecord{
		Name:       raw.Name,
		Build:      raw.Build,
		Depends:    raw.Depends,
		Constrains: raw.Constrains,
		FileName:   raw.FileName,
		URL:        raw.URL,
		Channel:    raw.Channel,
	}
	v, err := refScalarString(raw.Version)
	if err != nil {
		return fmt.Errorf("version: %w", err)
	}
	r.Version = v
	if r.BuildNumber, err = refIntOf(raw.BuildNumber); err != nil {
		return fmt.Errorf("build_number: %w", err)
	}
	if r.Size, err = refIntOf(raw.Size); err != nil {
		return fmt.Errorf("size: %w", err)
	}
	if r.Timestamp, err = refIntOf(raw.Timestamp); err != nil {
		return fmt.Errorf("timestamp: %w", err)
	}
	if r.Timestamp > 0 && r.Timestamp <= millisecondsAbove {
		r.Timestamp *= 1000
	}
	r.License = refDeref(raw.License)
	r.LicenseFamily = refDeref(raw.LicenseFamily)
	r.MD5 = refDeref(raw.MD5)
	r.SHA256 = refDeref(raw.SHA256)
	r.Subdir = refDeref(raw.Subdir)
	r.PythonSitePackagesPath = refDeref(raw.PythonSitePackagesPath)
	if r.TrackFeatures, err = refFeatureString(raw.TrackFeatures); err != nil {
		return fmt.Errorf("track_features: %w", err)
	}
	if r.Features, err = refFeatureString(raw.Features); err != nil {
		return fmt.Errorf("features: %w", err)
	}
	if r.Noarch, err = refNoarchOf(raw.Noarch); err != nil {
		return fmt.Errorf("noarch: %w", err)
	}
	if r.Depends == nil {
		r.Depends = []string{}
	}
	return nil
}

func refDeref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func refIntOf(n json.Number) (int64, error) {
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

func refScalarString(raw json.RawMessage) (string, error) {
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

func refFeatureString(raw json.RawMessage) (string, error) {
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

func refNoarchOf(raw json.RawMessage) (string, error) {
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
		return "generic", nil
	}
	return "", nil
}

type refRawRepodata struct {
	Info            *refRawInfo                `json:"info"`
	Packages        map[string]json.RawMessage `json:"packages"`
	PackagesConda   map[string]json.RawMessage `json:"packages.conda"`
	Removed         []string                   `json:"removed"`
	RepodataVersion json.Number                `json:"repodata_version"`
}

type refRawInfo struct {
	Subdir  *string `json:"subdir"`
	BaseURL *string `json:"base_url"`
}

// refParse is the old Parse.
func refParse(data []byte) (*Repodata, error) {
	var raw refRawRepodata
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("repodata: %w", err)
	}
	r := &Repodata{Removed: raw.Removed}
	if raw.Info != nil {
		r.Info.Subdir = refDeref(raw.Info.Subdir)
		r.Info.BaseURL = refDeref(raw.Info.BaseURL)
	}
	if raw.RepodataVersion != "" {
		v, err := refIntOf(raw.RepodataVersion)
		if err != nil {
			return nil, fmt.Errorf("repodata: repodata_version: %w", err)
		}
		r.RepodataVersion = int(v)
	}
	var err error
	if r.Packages, err = refDecodeRecords(raw.Packages, r.Info.Subdir); err != nil {
		return nil, fmt.Errorf("repodata: packages: %w", err)
	}
	if r.PackagesConda, err = refDecodeRecords(raw.PackagesConda, r.Info.Subdir); err != nil {
		return nil, fmt.Errorf("repodata: packages.conda: %w", err)
	}
	return r, nil
}

func refDecodeRecords(raw map[string]json.RawMessage, subdir string) (map[string]Record, error) {
	out := make(map[string]Record, len(raw))
	if len(raw) == 0 {
		return out, nil
	}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	recs := make([]refRecord, len(keys))
	errs := make([]error, len(keys))
	decode := func(i int) {
		k := keys[i]
		if err := recs[i].UnmarshalJSON(raw[k]); err != nil {
			errs[i] = fmt.Errorf("%s: %w", k, err)
			return
		}
		recs[i].FileName = k
		if recs[i].Subdir == "" {
			recs[i].Subdir = subdir
		}
	}
	workers := runtime.GOMAXPROCS(0)
	if len(keys) < 2000 || workers < 2 {
		for i := range keys {
			decode(i)
		}
	} else {
		var wg sync.WaitGroup
		chunk := (len(keys) + workers - 1) / workers
		for lo := 0; lo < len(keys); lo += chunk {
			hi := min(lo+chunk, len(keys))
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := lo; i < hi; i++ {
					decode(i)
				}
			}()
		}
		wg.Wait()
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for i, k := range keys {
		out[k] = Record(recs[i])
	}
	return out, nil
}
