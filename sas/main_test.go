package sas_test

import (
	"os"
	"testing"
)

var sharedDir string

// TestMain gives the package's tests one temporary directory for data
// they share (the small brain data set, built once).
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "jmedseg-sas-")
	if err != nil {
		panic(err)
	}
	sharedDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func tempDir() (string, error) { return sharedDir, nil }
