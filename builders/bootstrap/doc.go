// Package bootstrap builds the "bootstrap" target: shell scripts that a
// managed Spark platform runs on every node as it boots (Yandex Data Proc
// init actions, Google Dataproc initialization actions, AWS EMR bootstrap
// actions) to put a published environment in place. In image mode a script
// downloads a squashfs image by its content-addressed URL, verifies it and
// mounts it; in channel mode it installs a locked environment, pinned
// exactly, from a published conda mirror, with the node's conda or with the
// sparkenv binary.
//
// The scripts are self-contained: everything they need (URLs, digests, the
// explicit file and the lock) is written into them, so registering one URL
// with the platform is enough. Their content is a pure function of the
// configuration and the inputs: no times, no host names, no paths of the
// build machine. The builder never contacts the URLs it writes; only nodes
// do.
package bootstrap
