// Package s3 publishes artifacts to an S3 bucket or an S3-compatible store
// (Yandex Object Storage, MinIO, versitygw...).
//
// Every file goes under an immutable name first, then the mutable files of
// tree layouts (a channel's repodata.json), then the pointer objects
// (<target>/latest.json): a reader that follows a pointer or an index never
// finds a name that is not there yet. Each object carries the sha256 of its
// content as metadata, so a republish of unchanged content uploads nothing.
//
// The block:
//
//	publish "s3" "repo" {
//	  targets    = [target.conda_mirror.repo, target.squashfs.image]
//	  bucket     = var.bucket
//	  prefix     = "repos"
//	  endpoint   = "https://storage.yandexcloud.net" # omit for AWS
//	  region     = "ru-central1"
//	  path_style = true
//	}
//
// Optional: profile, website_endpoint, part_size_mb, multipart_threshold_mb,
// concurrency, max_attempts (see Config).
//
// This package must never overwrite an object under an immutable name with
// different content, never write a pointer before the objects it names, and
// never print, log or return credentials: they come from the standard AWS
// chain (environment, shared config and profiles, instance roles) and stay
// inside the SDK.
package s3
