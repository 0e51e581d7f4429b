package data_test

import (
	"context"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"

	"github.com/jmedseg/jmedseg/data"
)

// writeToy writes a two-split toy data set of 4×4 PNG pairs.
func writeToy(dir string) {
	_ = data.WriteManifest(dir, &data.Manifest{Name: "toy", Classes: []string{"background", "lesion"}})
	for split, n := range map[string]int{"train": 3, "val": 1} {
		for i := range n {
			for _, kind := range []string{"images", "masks"} {
				p := filepath.Join(dir, split, kind, fmt.Sprintf("case%d.png", i))
				_ = os.MkdirAll(filepath.Dir(p), 0o755)
				f, _ := os.Create(p)
				img := image.NewGray(image.Rect(0, 0, 4, 4))
				img.Pix[5] = 1
				_ = png.Encode(f, img)
				f.Close()
			}
		}
	}
}

func ExampleOpen() {
	dir, _ := os.MkdirTemp("", "toy")
	defer os.RemoveAll(dir)
	writeToy(dir)

	ds, err := data.Open(dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(ds.Layout, ds.Splits(), ds.NumClasses())
	train, _ := ds.Split("train")
	fmt.Println(train[0].ID, filepath.Base(train[0].Mask))
	// Output:
	// jmedseg [train val] 2
	// case0 case0.png
}

func ExampleCheck() {
	dir, _ := os.MkdirTemp("", "toy")
	defer os.RemoveAll(dir)
	writeToy(dir)
	os.Remove(filepath.Join(dir, "train", "masks", "case1.png"))

	rep, err := data.Check(context.Background(), dir, data.CheckOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("ok:", rep.OK())
	for _, is := range rep.Issues {
		rel, _ := filepath.Rel(dir, is.File)
		fmt.Println(is.Kind, rel)
	}
	// Output:
	// ok: false
	// missing-mask train/images/case1.png
}

func ExamplePrepare() {
	out, _ := os.MkdirTemp("", "brain")
	defer os.RemoveAll(out)

	rep, err := data.Prepare(context.Background(), data.PrepareOptions{Out: out})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(rep.Classes, rep.Size)
	for _, s := range []string{"train", "val", "test", "test_xsubject"} {
		fmt.Println(s, rep.Counts[s])
	}
	// Output:
	// [background brain] 128
	// train 73
	// val 21
	// test 14
	// test_xsubject 66
}

func ExampleReadMask() {
	m, err := data.ReadMask("testdata/mask_u1_4x3.nii")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(m.W, m.H, m.Labels(), m.CheckRange(2))
	// Output: 4 3 [0 1 2] label 2 at (1,1) is out of range [0,2)
}
