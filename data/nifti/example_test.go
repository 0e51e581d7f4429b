package nifti_test

import (
	"fmt"

	"github.com/jmedseg/jmedseg/data/nifti"
)

func Example() {
	v, err := nifti.ReadFile("testdata/u1_qform_lsa.nii")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(v.Dim, v.Spacing, v.Orientation(), v.AffineSource)
	ras := v.ToRAS()
	axial, err := ras.Slice(2, 0) // lowest axial plane
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(ras.Orientation(), axial.W, axial.H, axial.Spacing)
	// Output:
	// [3 4 2 1] [2 2 3] LSA qform
	// RAS 3 2 [2 3]
}
