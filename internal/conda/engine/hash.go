package engine

import "github.com/sparkenv/sparkenv/internal/artifact"

func hashFile(p string) (string, int64, error) { return artifact.HashFile(p) }
