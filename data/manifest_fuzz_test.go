package data

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzManifest: any dataset.json either fails to open with an error naming
// the file, or opens and is checked field by field without panicking; every
// issue names a file and a kind.
func FuzzManifest(f *testing.F) {
	f.Add([]byte(`{"name":"toy","classes":["bg","fg"],"width":8,"height":8,"channels":1}`))
	f.Add([]byte(`{"classes":["bg"],"flip_pairs":[[1,9],[-1,0]],"channels":2,"pixel_spacing_mm":[0,-1,3]}`))
	f.Add([]byte(`{"classes":["a","a"],"width":-3,"samples":[{"split":"x","image":"../../etc","mask":"/abs","spacing_mm":[1e309,0]}]}`))
	f.Add([]byte(`{"classes":null,"samples":[{"split":"train","image":"train/images/train_a.png","mask":"train/masks/nope.png"}]}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"classes":`))
	dir := f.TempDir()
	makeDataset(f, dir, map[string]int{"train": 2}, 8, 8, 2)
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, ManifestFile), b, 0o644); err != nil {
			t.Fatal(err)
		}
		d, err := Open(dir)
		if err != nil {
			if !strings.Contains(err.Error(), ManifestFile) {
				t.Fatalf("error does not name %s: %v", ManifestFile, err)
			}
			return
		}
		for _, is := range checkManifest(d) {
			if is.File == "" || is.Kind == "" || is.Message == "" {
				t.Fatalf("incomplete issue %+v", is)
			}
		}
		_ = d.NumClasses()
		if _, err := d.Split("train"); err != nil {
			t.Fatal(err)
		}
	})
}
