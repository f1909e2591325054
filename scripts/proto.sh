#!/usr/bin/env bash
# Regenerates the Go code of the project's .proto files with protoc and the
# protoc-gen-go / protoc-gen-go-grpc versions pinned in tools/go.mod.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

command -v protoc >/dev/null || { echo "protoc not found: run 'make deps' (Debian protobuf-compiler)" >&2; exit 1; }

bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
# Build the plugins from the tools module so their versions are the pinned ones.
(cd tools && go build -o "$bin/" google.golang.org/protobuf/cmd/protoc-gen-go google.golang.org/grpc/cmd/protoc-gen-go-grpc)

gen() { # gen PROTO_ROOT OUT_DIR FILES...
	local src=$1 out=$2
	shift 2
	PATH="$bin:$PATH" protoc -I "$src" \
		--go_out="$out" --go_opt=paths=source_relative \
		--go-grpc_out="$out" --go-grpc_opt=paths=source_relative \
		"$@"
}

# runtime/connect: Spark Connect artifact transfer. protoc writes below
# spark/connect/ (the proto package path); the Go package is internal/pb.
tmp=$(mktemp -d)
trap 'rm -rf "$bin" "$tmp"' EXIT
gen runtime/connect/proto "$tmp" spark/connect/artifacts.proto
mkdir -p runtime/connect/internal/pb
cp "$tmp"/spark/connect/*.pb.go runtime/connect/internal/pb/
echo "generated: $(ls runtime/connect/internal/pb/*.pb.go | tr '\n' ' ')"
