// Package condapack builds the "conda_pack" target: an installed conda
// environment packed as one archive (tar.gz, tar.zst or zip) that Spark
// unpacks on every executor with `--archives env.tar.gz#environment`.
//
// # Relocation
//
// Spark unpacks the archive into a directory nobody can name in advance
// (<executor working dir>/<alias>), so the environment must work wherever it
// lands. The interpreter does: CPython finds sys.prefix from its own
// location. Files with the prefix written into them (scripts, configuration,
// binaries with a prefix placeholder, conda-meta) cannot, so without
// dest_prefix the environment is installed for PackPrefix, a fixed path of
// 255 bytes padded with "_placehold" the way conda-build pads its
// placeholders. 255 bytes is the length of the placeholders modern packages
// carry in binary files, so installing for PackPrefix patches those files
// without shortening anything, and any later prefix of at most 255 bytes
// still fits into them. Every file that contains PackPrefix afterwards
// (found by scanning the installed tree, not guessed from package
// metadata) is listed with its replacement mode in .sparkenv/pack.json
// inside the archive, and bin/conda-unpack rewrites them for wherever the
// archive was unpacked: text files by plain replacement, binary files
// inside NUL-terminated strings padded back to their length with NULs.
// conda-unpack records the new prefix, so an unpacked environment can be
// moved and unpacked again (to a prefix no longer than the one before, for
// binary files). Compiled .pyc files are not listed: the import system
// replaces the source path recorded in them with the real one.
//
// With dest_prefix the environment is patched at pack time for that
// destination and the archive holds no conda-unpack and no list.
//
// A package whose binary files carry a shorter placeholder (the legacy
// 32-character /opt/anaconda1anaconda2anaconda3) cannot take a 255-byte
// prefix: the packing prefix is then cut to the shortest binary placeholder
// of the environment, and conda-unpack can relocate such an archive only
// into a path no longer than that (the build log says so).
//
// # Formats
//
// tar.gz (default, compressed in parallel blocks; level 4 by default as in
// conda-pack), tar.zst and zip. Spark unpacks .tar.gz with the system tar,
// which keeps permissions and symbolic links; it unpacks .zip with Hadoop's
// Java code, which loses symbolic links (and, before HADOOP-18145, the
// executable bits). A zip therefore never stores links: symlinks = "refuse"
// (default) fails naming the first link, "dereference" stores the file a
// link points to in its place. The archive's bytes depend only on the
// environment and the options, never on the machine or on the number of
// jobs.
//
// # pip
//
// Wheels of an environment (lock.Environment.Pip) are not installed by this
// builder yet: an environment with pip packages is refused rather than
// packed without them. Audit is the check a tree that pip has touched must
// pass before it is packed: it reports conda-managed files pip overwrote
// and refuses editable installs, which point outside the environment.
//
// This package must never modify the package cache (installed files may be
// hard links into it), write anything but the archive into the output
// directory, or let the build machine's paths or times into the archive.
package condapack
