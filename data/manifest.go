package data

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// ManifestFile is the name of a data set's description file.
const ManifestFile = "dataset.json"

// Manifest is the content of dataset.json (see README.md).
type Manifest struct {
	// Name and Description say what the data set is.
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Task names the labelling, e.g. "brain" or "aal".
	Task string `json:"task,omitempty"`
	// Classes names every class id, background (0) first.
	Classes []string `json:"classes"`
	// FlipPairs lists label pairs a left-right flip must swap.
	FlipPairs [][2]int `json:"flip_pairs,omitempty"`
	// Width and Height are the image size in pixels when all images share it.
	Width  int `json:"width,omitempty"`
	Height int `json:"height,omitempty"`
	// Channels is 1 for grey and 3 for colour images.
	Channels int `json:"channels,omitempty"`
	// PixelSpacing is the pixel size in mm (x, y) when every sample shares
	// it; samples may override it.
	PixelSpacing []float64 `json:"pixel_spacing_mm,omitempty"`
	// Sources say where the data came from.
	Sources []Source `json:"sources,omitempty"`
	// Split describes how the samples were divided among splits.
	Split *SplitInfo `json:"split,omitempty"`
	// Samples lists every image/mask pair with its origin.
	Samples []SampleInfo `json:"samples,omitempty"`
}

// Source is one origin of data: a package, a file, a citation.
type Source struct {
	ID          string            `json:"id"`
	Description string            `json:"description,omitempty"`
	Package     string            `json:"package,omitempty"`
	Version     string            `json:"version,omitempty"`
	Files       map[string]string `json:"files,omitempty"`
	SHA256      map[string]string `json:"sha256,omitempty"`
	Orientation string            `json:"orientation,omitempty"`
	Dim         []int             `json:"dim,omitempty"`
	SpacingMM   []float64         `json:"spacing_mm,omitempty"`
	Citation    string            `json:"citation,omitempty"`
	License     string            `json:"license,omitempty"`
}

// SplitInfo documents the splitting method.
type SplitInfo struct {
	Method string         `json:"method"`
	Params map[string]any `json:"params,omitempty"`
	Counts map[string]int `json:"counts,omitempty"`
}

// SampleInfo records one sample and where it came from.
type SampleInfo struct {
	Split string `json:"split"`
	// Image and Mask are paths relative to the data set directory.
	Image string `json:"image"`
	Mask  string `json:"mask"`
	// Subject is the source id; Volume, MaskVolume and LabelVolume the
	// files the slice was cut from.
	Subject     string `json:"subject,omitempty"`
	Volume      string `json:"volume,omitempty"`
	MaskVolume  string `json:"mask_volume,omitempty"`
	LabelVolume string `json:"label_volume,omitempty"`
	// Axis and Index locate the slice in the stored voxel grid of Volume
	// (0-based axis i, j or k); Plane names it ("axial").
	Axis  int    `json:"axis"`
	Index int    `json:"index"`
	Plane string `json:"plane,omitempty"`
	// WorldMM is the slice position along the superior axis in mm.
	WorldMM float64 `json:"world_mm"`
	// SpacingMM is the pixel size of the written image (x, y) in mm.
	SpacingMM []float64 `json:"spacing_mm,omitempty"`
	// Foreground is the fraction of mask pixels that are not background.
	Foreground float64 `json:"foreground"`
}

// ReadManifest reads dir/dataset.json.
func ReadManifest(dir string) (*Manifest, error) {
	p := filepath.Join(dir, ManifestFile)
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: corrupt JSON: %w", p, err)
	}
	return &m, nil
}

// WriteManifest writes m to dir/dataset.json atomically.
func WriteManifest(dir string, m *Manifest) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	p := filepath.Join(dir, ManifestFile)
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}
