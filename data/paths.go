package data

import "path/filepath"

// joinDir resolves a slash-separated path relative to dir.
func joinDir(dir, rel string) string {
	if filepath.IsAbs(rel) {
		return rel
	}
	return filepath.Join(dir, filepath.FromSlash(rel))
}
