// Package s3 publishes artifacts to an S3 bucket or an S3-compatible store
// (Yandex Object Storage, MinIO, versitygw...).
//
// Every file goes under an immutable name first, then the mutable files of
// tree layouts (a channel's repodata.json), then the pointer objects
// (<target>/latest.json): a reader that follows a pointer or an index never
// finds a name that is not there yet. Each object carries the sha256 of its
// content as metadata, so a republish of unchanged content uploads nothing.
//
// This package must never overwrite an object under an immutable name with
// different content, never write a pointer before the objects it names, and
// never print, log or return credentials: they come from the standard AWS
// chain (environment, shared config and profiles, instance roles) and stay
// inside the SDK.
package s3
