package data

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Debian packages and files the default data set is built from.
const (
	PkgMricronData  = "mricron-data"
	PkgITKExamples  = "insighttoolkit5-examples"
	mricronDir      = "usr/share/mricron/templates"
	itkExamplesData = "usr/share/doc/insighttoolkit5-examples/examples/Data"
)

// DebFiles locates the files of one Debian package.
type DebFiles struct {
	Package string
	Version string
	// Root is the directory the package's paths are relative to: "/" for an
	// installed package, or the dpkg -x extraction directory in the cache.
	Root string
}

// Path returns the absolute path of a file of the package given relative to
// its root, e.g. "usr/share/mricron/templates/ch2.nii.gz".
func (d *DebFiles) Path(rel string) string { return filepath.Join(d.Root, rel) }

// DefaultCacheDir returns $JMEDSEG_CACHE, else os.UserCacheDir()/jmedseg,
// else a directory under os.TempDir.
func DefaultCacheDir() string {
	if d := os.Getenv("JMEDSEG_CACHE"); d != "" {
		return d
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "jmedseg")
	}
	return filepath.Join(os.TempDir(), "jmedseg-cache")
}

// FetchDeb makes the files of a Debian package available without changing
// the system. It first looks for the package's files among the installed
// system paths (probe, relative to /), then in cacheDir/debs/<pkg>/root
// from an earlier call, and otherwise runs `apt-get download <pkg>` and
// `dpkg -x` into the cache. probe names one file the caller needs.
func FetchDeb(ctx context.Context, pkg, probe, cacheDir string) (*DebFiles, error) {
	if _, err := os.Stat(filepath.Join("/", probe)); err == nil {
		return &DebFiles{Package: pkg, Version: installedVersion(ctx, pkg), Root: "/"}, nil
	}
	dir := filepath.Join(cacheDir, "debs", pkg)
	root := filepath.Join(dir, "root")
	if _, err := os.Stat(filepath.Join(root, probe)); err == nil {
		v, _ := os.ReadFile(filepath.Join(dir, "VERSION"))
		return &DebFiles{Package: pkg, Version: strings.TrimSpace(string(v)), Root: root}, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	deb, err := aptDownload(ctx, pkg, dir)
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(dir, "x-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	if out, err := exec.CommandContext(ctx, "dpkg-deb", "-x", deb, tmp).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("dpkg-deb -x %s: %v: %s", deb, err, strings.TrimSpace(string(out)))
	}
	ver := ""
	if out, err := exec.CommandContext(ctx, "dpkg-deb", "-f", deb, "Version").Output(); err == nil {
		ver = strings.TrimSpace(string(out))
	}
	if _, err := os.Stat(filepath.Join(tmp, probe)); err != nil {
		return nil, fmt.Errorf("package %s %s has no file /%s", pkg, ver, probe)
	}
	os.RemoveAll(root)
	if err := os.Rename(tmp, root); err != nil {
		return nil, err
	}
	_ = os.WriteFile(filepath.Join(dir, "VERSION"), []byte(ver+"\n"), 0o644)
	_ = os.Remove(deb)
	return &DebFiles{Package: pkg, Version: ver, Root: root}, nil
}

// aptDownload runs apt-get download in dir, retrying while apt is locked,
// and returns the .deb path.
func aptDownload(ctx context.Context, pkg, dir string) (string, error) {
	if _, err := exec.LookPath("apt-get"); err != nil {
		return "", fmt.Errorf("package %s is not installed and apt-get is not available: %w", pkg, err)
	}
	var last error
	for attempt := range 6 {
		cmd := exec.CommandContext(ctx, "apt-get", "download", "-q", pkg)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err == nil {
			debs, _ := filepath.Glob(filepath.Join(dir, pkg+"_*.deb"))
			if len(debs) == 0 {
				return "", fmt.Errorf("apt-get download %s wrote no .deb", pkg)
			}
			return debs[len(debs)-1], nil
		}
		last = fmt.Errorf("apt-get download %s: %v: %s", pkg, err, strings.TrimSpace(string(out)))
		if !strings.Contains(string(out), "lock") {
			break
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(time.Duration(attempt+1) * time.Second):
		}
	}
	return "", last
}

func installedVersion(ctx context.Context, pkg string) string {
	out, err := exec.CommandContext(ctx, "dpkg-query", "-W", "-f=${Version}", pkg).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// findFile looks for name under root (for packages whose layout moved).
func findFile(root, name string) (string, error) {
	var found string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if !d.IsDir() && d.Name() == name {
			found = p
			return fs.SkipAll
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	if found == "" {
		return "", errors.New(name + " not found under " + root)
	}
	return found, nil
}
