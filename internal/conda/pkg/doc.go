// Package pkg reads and writes conda package archives (CEP 35: `.conda` and
// `.tar.bz2`) and the metadata in their info/ directory (CEP 34).
//
// Reading is defensive: archives come from the network, so extraction refuses
// absolute or `..` member names, links that lead outside the destination,
// device files, and bounds the number of members and the bytes decompressed.
// Writing is byte-reproducible: sorted members, fixed times, zeroed owners,
// normalized modes.
//
// The package never patches prefixes, links files into environments or runs
// anything from a package: that is the installer's work.
package pkg
