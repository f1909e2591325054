package fetch_test

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/sparkenv/sparkenv/internal/conda/channel"
	"github.com/sparkenv/sparkenv/internal/conda/fetch"
	"github.com/sparkenv/sparkenv/internal/conda/repodata"
)

// TestChannelToCache goes the way an install does: a channel written with
// repodata.WriteChannel, its index fetched by channel.Fetcher, the records
// turned into Items and the archives fetched into the cache.
func TestChannelToCache(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	var recs []repodata.Record
	for i := range 12 {
		subdir := []string{"linux-64", "noarch"}[i%2]
		name := fmt.Sprintf("pkg%d", i)
		fn := name + "-1.0-0.conda"
		data := []byte(fmt.Sprintf("archive %d %s", i, subdir))
		if err := os.MkdirAll(filepath.Join(root, subdir), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, subdir, fn), data, 0o644); err != nil {
			t.Fatal(err)
		}
		s, m := sha256.Sum256(data), md5.Sum(data)
		recs = append(recs, repodata.Record{Name: name, Version: "1.0", Build: "0", FileName: fn, Subdir: subdir,
			Depends: []string{}, SHA256: hex.EncodeToString(s[:]), MD5: hex.EncodeToString(m[:]), Size: int64(len(data))})
	}
	if err := repodata.WriteChannel(root, recs, repodata.WriteOptions{Zst: true}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.FileServer(http.Dir(root)))
	defer srv.Close()
	ch, err := channel.ParseChannel(srv.URL, "")
	if err != nil {
		t.Fatal(err)
	}
	f := &channel.Fetcher{CacheDir: t.TempDir()}
	var items []fetch.Item
	for _, sd := range []string{"linux-64", "noarch"} {
		rd, err := f.Repodata(context.Background(), ch, sd)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range repodata.Dedup(rd.Records()) {
			items = append(items, fetch.Item{URL: r.URL, SHA256: r.SHA256, MD5: r.MD5, Size: r.Size, FileName: r.FileName})
		}
	}
	if len(items) != len(recs) {
		t.Fatalf("%d items from %d records", len(items), len(recs))
	}
	cache := &fetch.Cache{Dir: t.TempDir()}
	paths, err := cache.Fetch(context.Background(), items, fetch.Options{Jobs: 3})
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range paths {
		if err := fetch.Verify(p, items[i].SHA256); err != nil {
			t.Fatal(err)
		}
		if filepath.Base(p) != items[i].FileName {
			t.Fatalf("path %s for %s", p, items[i].FileName)
		}
	}
}
