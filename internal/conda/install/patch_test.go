package install

import (
	"bytes"
	"errors"
	"path"
	"strings"
	"testing"
)

func TestPatchBinary(t *testing.T) {
	ph := "/PLACEHOLDER_PLACEHOLDER" // 24 bytes
	pad := func(n int) string { return strings.Repeat("\x00", n) }
	for _, c := range []struct {
		name, in, prefix, want string
		changed                bool
	}{
		{"one string", "abc\x00" + ph + "/lib\x00tail", "/p", "abc\x00/p/lib" + pad(22) + "\x00tail", true},
		{"text before it stays", "X=" + ph + "/a\x00", "/p", "X=/p/a" + pad(22) + "\x00", true},
		{"two in one string", ph + ":" + ph + "/bin\x00z", "/q", "/q:/q/bin" + pad(44) + "\x00z", true},
		{"two strings", ph + "\x00" + ph + "/x", "/r", "/r" + pad(22) + "\x00/r/x" + pad(22), true},
		{"same length", "\x00" + ph + "\x00", "/" + strings.Repeat("y", len(ph)-1), "\x00/" + strings.Repeat("y", len(ph)-1) + "\x00", true},
		{"absent", "nothing here\x00", "/much/longer/than/the/placeholder/itself", "nothing here\x00", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			data := []byte(c.in)
			changed, err := patchBinary(data, ph, c.prefix)
			if err != nil {
				t.Fatal(err)
			}
			if changed != c.changed || string(data) != c.want {
				t.Fatalf("got %q (changed %v), want %q (changed %v)", data, changed, c.want, c.changed)
			}
		})
	}
	_, err := patchBinary([]byte("a"+ph+"\x00"), ph, ph+"/more")
	var tooLong prefixTooLongError
	if !errors.As(err, &tooLong) {
		t.Fatalf("longer prefix: err = %v", err)
	}
}

func TestPatchText(t *testing.T) {
	got := string(patchText([]byte("a=PH\nb=PH/x PH"), "PH", "/a/much/longer/prefix"))
	if got != "a=/a/much/longer/prefix\nb=/a/much/longer/prefix/x /a/much/longer/prefix" {
		t.Fatal(got)
	}
}

func TestFixShebang(t *testing.T) {
	long := "/opt/" + strings.Repeat("long/", 30) + "env"
	for _, c := range []struct {
		name, in, prefix, want string
	}{
		{"short", "#!/opt/conda/bin/python3.11\nprint(1)\n", "/opt/conda", "#!/opt/conda/bin/python3.11\nprint(1)\n"},
		{"not a script", "print(1)\n", long, "print(1)\n"},
		{"long python", "#!" + long + "/bin/python3.11\nprint(1)\n", long,
			"#!/bin/sh\n'''exec' \"" + long + "/bin/python3.11\" \"$0\" \"$@\" #'''\nprint(1)\n"},
		{"long python with options", "#!" + long + "/bin/python -E -s\r\nx\n", long,
			"#!/bin/sh\n'''exec' \"" + long + "/bin/python\" -E -s \"$0\" \"$@\" #'''\r\nx\n"},
		{"long perl", "#!" + long + "/bin/perl -w\nprint 1;\n", long, "#!/usr/bin/env perl -w\nprint 1;\n"},
		{"no newline", "#!" + long + "/bin/bash", long, "#!/usr/bin/env bash"},
		{"space in prefix", "#!/opt/my env/bin/python3.12 -u\nx\n", "/opt/my env",
			"#!/bin/sh\n'''exec' \"/opt/my env/bin/python3.12\" -u \"$0\" \"$@\" #'''\nx\n"},
		{"space, not python", "#!/opt/my env/bin/bash -e\nx\n", "/opt/my env", "#!/usr/bin/env bash -e\nx\n"},
		{"quote in path", "#!/opt/it's env/bin/python\nx\n", "/opt/it's env", "#!/usr/bin/env python\nx\n"},
		{"python-config is not python", "#!" + long + "/bin/python-config\nx\n", long, "#!/usr/bin/env python-config\nx\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := string(fixShebang([]byte(c.in), c.prefix)); got != c.want {
				t.Fatalf("got  %q\nwant %q", got, c.want)
			}
		})
	}
}

func TestParseEntryPoint(t *testing.T) {
	ep, err := parseEntryPoint(" jupyter-lab = jupyterlab.labapp:main ")
	if err != nil || ep != (entryPoint{"jupyter-lab", "jupyterlab.labapp", "main"}) {
		t.Fatalf("%+v %v", ep, err)
	}
	ep, err = parseEntryPoint("tool=pkg.cli:App.run [extra]")
	if err != nil || ep.Function != "App.run" {
		t.Fatalf("%+v %v", ep, err)
	}
	if s := string(ep.script("/p/bin/python3.11", "/p")); !strings.Contains(s, "from pkg.cli import App\n") || !strings.Contains(s, "sys.exit(App.run())") {
		t.Fatalf("script:\n%s", s)
	}
	for _, bad := range []string{"", "cmd", "cmd = mod", "../x = m:f", "a/b = m:f", "x = m:f()", "x = 1m:f", "x = m:f;import os", "x = m.:f", " = m:f"} {
		if _, err := parseEntryPoint(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestLinkDest(t *testing.T) {
	in := &installer{prefix: "/opt/conda"}
	for _, c := range []struct {
		phys, target, want string
		ok                 bool
	}{
		{"lib/libz.so", "libz.so.1", "lib/libz.so.1", true},
		{"lib/terminfo", "../share/terminfo", "share/terminfo", true},
		{"lib64", "lib", "lib", true},
		{"a", ".", ".", true},
		{"bin/x", "/opt/conda/lib/x", "lib/x", true},
		{"bin/x", "/opt/conda", ".", true},
		{"bin/x", "/opt/condax/lib", "", false},
		{"bin/x", "/etc/passwd", "", false},
		{"bin/x", "../../x", "", false},
		{"x", "..", "", false},
		{"bin/x", "sub/../../y", "", false},
		{"bin/x", "", "", false},
		{"a/b/c", "../../d/e", "d/e", true},
	} {
		got, ok := in.linkDest(c.phys, c.target)
		if ok != c.ok || got != c.want {
			t.Errorf("linkDest(%q, %q) = %q, %v; want %q, %v", c.phys, c.target, got, ok, c.want, c.ok)
		}
	}
}

func TestPythonLayout(t *testing.T) {
	l, err := newPythonLayout("3.11.7", "")
	if err != nil || l.Version != "3.11" || l.SitePackages != "lib/python3.11/site-packages" {
		t.Fatalf("%+v %v", l, err)
	}
	if got := l.noarchPythonPath("site-packages/a/b.py"); got != "lib/python3.11/site-packages/a/b.py" {
		t.Fatal(got)
	}
	if got := l.noarchPythonPath("python-scripts/tool"); got != "bin/tool" {
		t.Fatal(got)
	}
	if got := l.noarchPythonPath("share/x"); got != "share/x" {
		t.Fatal(got)
	}
	if l, err := newPythonLayout("3.13.0rc1", "lib/python3.13t/site-packages"); err != nil || l.Version != "3.13" || l.SitePackages != "lib/python3.13t/site-packages" {
		t.Fatalf("%+v %v", l, err)
	}
	for _, bad := range [][2]string{{"3", ""}, {"x.y", ""}, {"3.11", "../lib"}, {"3.11", "/abs"}} {
		if _, err := newPythonLayout(bad[0], bad[1]); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

func FuzzPatchBinary(f *testing.F) {
	f.Add([]byte("abc\x00/PH/PH/lib\x00tail"), "/PH", "/p")
	f.Add([]byte("aaa"), "aa", "a")
	f.Add([]byte("\x00\x00"), "", "/x")
	f.Add([]byte("/PH"), "/PH", "/longer")
	f.Fuzz(func(t *testing.T, data []byte, ph, prefix string) {
		orig := append([]byte(nil), data...)
		changed, err := patchBinary(data, ph, prefix)
		if len(data) != len(orig) {
			t.Fatalf("length changed from %d to %d", len(orig), len(data))
		}
		if err != nil {
			if len(prefix) <= len(ph) && !strings.Contains(ph, "\x00") {
				t.Fatalf("error with a prefix that fits: %v", err)
			}
			if !bytes.Equal(data, orig) {
				t.Fatal("data changed on error")
			}
			return
		}
		if !changed && !bytes.Equal(data, orig) {
			t.Fatal("data changed but reported unchanged")
		}
		if ph != "" && !bytes.Contains(orig, []byte(ph)) && changed {
			t.Fatal("reported a change without a placeholder")
		}
	})
}

func FuzzFixShebang(f *testing.F) {
	long := "/opt/" + strings.Repeat("x/", 70)
	f.Add([]byte("#!"+long+"bin/python3.11 -E\nprint(1)\n"), strings.TrimSuffix(long, "/"))
	f.Add([]byte("#!/a b/bin/perl\nx"), "/a b")
	f.Add([]byte("#!"), "")
	f.Add([]byte("#! \t\n"), "/p")
	f.Fuzz(func(t *testing.T, data []byte, prefix string) {
		out := fixShebang(data, prefix)
		nlIn, nlOut := bytes.IndexByte(data, '\n'), bytes.IndexByte(out, '\n')
		if bytes.Equal(out, data) {
			return
		}
		if !bytes.HasPrefix(out, []byte("#!/")) {
			t.Fatalf("rewritten to %q", out)
		}
		// Only the first line changes.
		var restIn, restOut []byte
		if nlIn >= 0 {
			restIn = data[nlIn:]
		}
		if bytes.HasPrefix(out, []byte("#!/bin/sh\n")) {
			second := bytes.IndexByte(out[nlOut+1:], '\n')
			if second >= 0 {
				restOut = out[nlOut+1+second:]
			}
		} else if nlOut >= 0 {
			restOut = out[nlOut:]
		}
		if !bytes.Equal(restIn, restOut) {
			t.Fatalf("body changed: %q -> %q", restIn, restOut)
		}
	})
}

func FuzzParseEntryPoint(f *testing.F) {
	f.Add("jupyter-lab = jupyterlab.labapp:main")
	f.Add("x=a.b:C.d [extra]")
	f.Add("= :")
	f.Fuzz(func(t *testing.T, s string) {
		ep, err := parseEntryPoint(s)
		if err != nil {
			return
		}
		if !validRelPath("bin/"+ep.Command) || strings.Contains(ep.Command, "/") {
			t.Fatalf("command %q is not a file name", ep.Command)
		}
		script := string(ep.script("/p/bin/python3.11", "/p"))
		if strings.Count(script, "\n") != 10 {
			t.Fatalf("script of %q has unexpected lines:\n%s", s, script)
		}
	})
}

func FuzzLinkDest(f *testing.F) {
	f.Add("lib/a", "../share/b")
	f.Add("a/b/c", "../../../x")
	f.Add("x", "/opt/conda/../etc")
	f.Fuzz(func(t *testing.T, phys, target string) {
		if !validRelPath(phys) {
			return
		}
		in := &installer{prefix: "/opt/conda"}
		r, ok := in.linkDest(phys, target)
		if !ok {
			return
		}
		if r == ".." || strings.HasPrefix(r, "../") || strings.HasPrefix(r, "/") || path.Clean(r) != r {
			t.Fatalf("linkDest(%q, %q) = %q, which leaves the prefix", phys, target, r)
		}
	})
}
