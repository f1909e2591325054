// Package condaindex turns a folder laid out as a conda channel
// (<dir>/<subdir>/*.conda|*.tar.bz2) into a channel clients can use: per
// subdir repodata.json (plain, zstd and optionally CEP 16 shards), an empty
// noarch index when there is no noarch package, channeldata.json at the root
// and a small index.html per folder for people. It is what `sparkenv index`
// runs, and what the conda mirror target writes its index with.
//
// Records come from each package's own info/ and from its bytes (sha256,
// md5, size, hashed while the file is read). A cache file in the channel
// root remembers what was read, so a second run reads only new or changed
// files.
//
// The package never modifies, renames or deletes a package file, and never
// writes an index that was only partly built: a broken package fails the
// whole run before anything is written.
package condaindex
