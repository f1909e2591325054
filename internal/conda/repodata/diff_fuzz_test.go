package repodata

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// diffSeeds probe the corners where a hand-written reader most easily
// parts from encoding/json.
var diffSeeds = []string{
	``, ` `, `null`, `null garbage`, `nul`, `[]`, `"x"`, `5`, `true`, `{} trailing`, `{"a":1} {`,
	`{"packages":{"a.conda":null}}`,
	`{"packages":{"a.conda":5}}`,
	`{"packages":{"a.conda":5,"a.conda":{}}}`,
	`{"packages":{"a.conda":{},"a.conda":5}}`,
	`{"packages":{"a.conda":{"name":5},"b.conda":{"name":"b"}},"packages":{"c.conda":{}}}`,
	`{"packages":{"a.conda":{}},"packages":null,"packages":{"b.conda":{}}}`,
	`{"packages":{"a.conda":{"name":"a","name":null,"license":"MIT","license":null}}}`,
	`{"packages":{"a.conda":{"NAME":"a","Version":"1","ſubdir":"x","K":1,"DEPENDS":["x"]}}}`,
	`{"packages":{"a.conda":{"depends":["a","b","c"],"depends":["x"],"depends":[null,null,null,null]}}}`,
	`{"packages":{"a.conda":{"depends":[null],"constrains":[],"track_features":[null,"a"," b "]}}}`,
	`{"packages":{"a.conda":{"version":true,"version":"1","noarch":5,"noarch":false}}}`,
	`{"packages":{"a.conda":{"build_number":"12","size":"1e3","timestamp":"x"}}}`,
	`{"packages":{"a.conda":{"build_number":1e400}}}`,
	`{"packages":{"a.conda":{"build_number":99999999999999999999,"size":-0,"timestamp":1.5e11}}}`,
	`{"packages":{"a.conda":{"build_number":5,"build_number":null}}}`,
	`{"packages":{"a.conda":{"name":"\u00e9\ud83d\ude00\ud800x\udc00\\\/\b\f\n\r\t","md5":"\xff\xfe"}}}`,
	`{"packages":{"\u0061.conda":{"fn":"f","url":"u","channel":"c"}}}`,
	`{"packages":{"a.conda":{"x":[[[[{"y":[]}]]]],"track_features":"  t  "}},"info":{"subdir":"s","base_url":null}}`,
	`{"info":{"subdir":"s"},"info":{"base_url":"b"},"info":null,"info":{"SUBDIR":"t"}}`,
	`{"info":5}`, `{"removed":["a",null],"removed":[null,null,"c"],"repodata_version":"2"}`,
	`{"repodata_version":""}`, `{"repodata_version":1.5}`, `{"packages":{"a.conda":{"depends":"x"}}}`,
	`{"packages":{"a.conda":{"version":01}}}`, `{"packages":{"a.conda":{"version":-}}}`,
	`{"packages":{"a.conda":{"version":1.}}}`, `{"packages":{"a.conda":{"x":"\x01"}}}`,
	`{"packages":{"a.conda":{"x":"\u12"}}}`, `{"packages":{"a.conda":{"x":"\q"}}}`,
	`{"packages":{"a.conda":{"name":"a",}}}`, `{"packages":{"a.conda":{"name":"a"}`,
	`{"packages":{"a.conda":{"name":5,"x":[}}}`,
	"{\"packages\":{\"a.conda\":{\"n\u00e9\":1,\"N\xc3\xa9\":2,\"\xa1\":[\"x\"]}}}",
	`{"x":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}`,
	`{"x":` + strings.Repeat("[", 9999) + strings.Repeat("]", 9999) + `}`,
	`{"packages":{"a.conda":{"x":` + strings.Repeat("[", 9997) + strings.Repeat("]", 9997) + `}}}`,
	`{"packages":{"a.conda":{"x":` + strings.Repeat("[", 9998) + strings.Repeat("]", 9998) + `}}}`,
}

// FuzzParseDifferential holds Parse to the old encoding/json based reader:
// the same result, or both fail; and the input left as it was.
func FuzzParseDifferential(f *testing.F) {
	for _, s := range append(diffSeeds, fuzzSeeds...) {
		f.Add([]byte(s))
	}
	for _, s := range realSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		orig := bytes.Clone(data)
		defer func() {
			if !bytes.Equal(orig, data) {
				t.Fatalf("the input was modified")
			}
		}()
		want, werr := refParse(data)
		got, err := Parse(data)
		if (err != nil) != (werr != nil) {
			t.Fatalf("error %v, reference error %v", err, werr)
		}
		if err == nil {
			if d := cmp.Diff(want, got); d != "" {
				t.Fatalf("(-reference +got):\n%s", d)
			}
		}
	})
}

// FuzzRecordDifferential does the same for Record.UnmarshalJSON, called
// directly and through json.Unmarshal as other packages do.
func FuzzRecordDifferential(f *testing.F) {
	for _, s := range diffSeeds {
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"name":"a","version":1.0,"depends":null,"timestamp":1600000000,"noarch":true}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		orig := bytes.Clone(data)
		defer func() {
			if !bytes.Equal(orig, data) {
				t.Fatalf("the input was modified")
			}
		}()
		var want refRecord
		werr := want.UnmarshalJSON(data)
		var got Record
		err := got.UnmarshalJSON(data)
		if (err != nil) != (werr != nil) {
			t.Fatalf("error %v, reference error %v", err, werr)
		}
		if err == nil {
			if d := cmp.Diff(Record(want), got); d != "" {
				t.Fatalf("(-reference +got):\n%s", d)
			}
		}
		var want2 refRecord
		werr = json.Unmarshal(data, &want2)
		var got2 Record
		err = json.Unmarshal(data, &got2)
		if (err != nil) != (werr != nil) {
			t.Fatalf("json.Unmarshal: error %v, reference error %v", err, werr)
		}
		if err == nil {
			if d := cmp.Diff(Record(want2), got2); d != "" {
				t.Fatalf("json.Unmarshal (-reference +got):\n%s", d)
			}
		}
	})
}

// realSeeds are small documents cut from the real snapshots.
func realSeeds(f *testing.F) [][]byte {
	var out [][]byte
	for _, file := range []string{"pytorch-linux-64.repodata.json", "r-linux-64.repodata.json"} {
		var doc struct {
			Info     json.RawMessage            `json:"info"`
			Packages map[string]json.RawMessage `json:"packages"`
		}
		if err := json.Unmarshal(readData(f, file), &doc); err != nil {
			f.Fatal(err)
		}
		n := 0
		small := map[string]json.RawMessage{}
		for k, v := range doc.Packages {
			if n++; n > 3 {
				break
			}
			small[k] = v
		}
		b, err := json.Marshal(map[string]any{"info": doc.Info, "packages": small, "removed": []string{}})
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// TestParseMatchesReference compares whole real files, which the fuzzer's
// small inputs never reach.
func TestParseMatchesReference(t *testing.T) {
	t.Parallel()
	docs := map[string][]byte{}
	for _, file := range []string{"pytorch-linux-64.repodata.json", "r-linux-64.repodata.json", "mamba-sudoku.repodata.json"} {
		docs[file] = readData(t, file)
	}
	for sd, b := range index4BySubdir(t) {
		docs["conda-index4 "+sd] = b
	}
	for name, data := range docs {
		want, err := refParse(data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got, err := Parse(data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("%s (-reference +got):\n%s", name, d)
		}
	}
}
