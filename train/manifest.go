package train

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/jmedseg/jmedseg/internal/atomicfile"
	"github.com/jmedseg/jmedseg/torch"
)

// Manifest records what a run was made from: enough to tell whether two
// runs can be expected to give the same checkpoints (same seed, flags, data
// set bytes, jmedseg build and libtorch, with --deterministic).
type Manifest struct {
	Seed          uint64 `json:"seed"`
	Deterministic bool   `json:"deterministic"`
	// Jmedseg is the module version and, where the binary was built from a
	// VCS checkout, the revision ("+dirty" when it had local changes).
	Jmedseg string `json:"jmedseg_version"`
	Go      string `json:"go_version"`
	// Libtorch is the version of the libtorch loaded at run time;
	// LibtorchHeaders the one the shim was compiled against.
	Libtorch        string   `json:"libtorch_version"`
	LibtorchHeaders string   `json:"libtorch_headers"`
	Data            DataHash `json:"data"`
	// Flags are the resolved options (config file, then command line).
	Flags       map[string]any `json:"flags"`
	CommandLine []string       `json:"command_line"`
	Created     string         `json:"created"`
}

// DataHash is a SHA-256 over a data set's files: for each regular file in
// lexical path order, its slash-separated path relative to Root, its size
// and its bytes.
type DataHash struct {
	Root   string `json:"root"`
	Files  int    `json:"files"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
}

// HashData hashes the data set at path: a directory's files, or, for a
// data list file (a MONAI-style JSON), the files of the directory holding
// it, where its relative paths point.
func HashData(path string) (DataHash, error) {
	root := path
	fi, err := os.Stat(path)
	if err != nil {
		return DataHash{}, fmt.Errorf("hash data: %w", err)
	}
	if !fi.IsDir() {
		root = filepath.Dir(path)
	}
	h := sha256.New()
	out := DataHash{Root: root}
	// WalkDir visits entries in lexical order, so the hash does not depend
	// on the file system's directory order.
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil // directories; links and devices are not data
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		info, err := f.Stat()
		if err != nil {
			return err
		}
		var size [8]byte
		binary.LittleEndian.PutUint64(size[:], uint64(info.Size()))
		h.Write([]byte(filepath.ToSlash(rel)))
		h.Write([]byte{0})
		h.Write(size[:])
		n, err := io.Copy(h, f)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		out.Files++
		out.Bytes += n
		return nil
	})
	if err != nil {
		return DataHash{}, fmt.Errorf("hash data %s: %w", root, err)
	}
	out.SHA256 = hex.EncodeToString(h.Sum(nil))
	return out, nil
}

// Version is jmedseg's version as recorded in the binary's build
// information: the module version, plus the VCS revision where known.
func Version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	if rev != "" {
		v += " " + rev + dirty
	}
	return v
}

// NewManifest fills a manifest for a run over data with the resolved
// flags.
func NewManifest(seed uint64, deterministic bool, data string, flags map[string]any) (*Manifest, error) {
	dh, err := HashData(data)
	if err != nil {
		return nil, err
	}
	rt, err := torch.RuntimeVersion()
	if err != nil {
		return nil, err
	}
	return &Manifest{Seed: seed, Deterministic: deterministic, Jmedseg: Version(), Go: runtime.Version(),
		Libtorch: rt, LibtorchHeaders: torch.HeaderVersion(), Data: dh, Flags: flags,
		CommandLine: os.Args, Created: time.Now().UTC().Format(time.RFC3339)}, nil
}

// WriteJSON writes v as indented JSON to path atomically (a reader sees
// the old file or the new one, never a part).
func WriteJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return atomicfile.Write(path, func(w io.Writer) error {
		_, err := w.Write(append(b, '\n'))
		return err
	})
}
