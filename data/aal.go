package data

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// AALLobes are the classes of the "aal" task: the 116 AAL regions merged
// into seven lobes and structures, left and right hemispheres together (so
// a left-right flip needs no label swap). White matter and everything AAL
// does not label is background.
var AALLobes = []string{"background", "frontal", "parietal", "temporal", "occipital",
	"limbic-insula", "deep-grey", "cerebellum"}

// aalLobePrefixes maps AAL region name prefixes to AALLobes ids.
var aalLobePrefixes = []struct {
	prefix string
	lobe   int32
}{
	{"Precentral", 1}, {"Frontal_", 1}, {"Rolandic_Oper", 1}, {"Supp_Motor_Area", 1},
	{"Olfactory", 1}, {"Rectus", 1}, {"Paracentral_Lobule", 1},
	{"Postcentral", 2}, {"Parietal_", 2}, {"SupraMarginal", 2}, {"Angular", 2}, {"Precuneus", 2},
	{"Heschl", 3}, {"Temporal_", 3}, {"Fusiform", 3},
	{"Calcarine", 4}, {"Cuneus", 4}, {"Lingual", 4}, {"Occipital_", 4},
	{"Insula", 5}, {"Cingulum_", 5}, {"Hippocampus", 5}, {"ParaHippocampal", 5}, {"Amygdala", 5},
	{"Caudate", 6}, {"Putamen", 6}, {"Pallidum", 6}, {"Thalamus", 6},
	{"Cerebelum_", 7}, {"Vermis_", 7},
}

// AALLobeOf returns the AALLobes id of an AAL region name, or -1.
func AALLobeOf(region string) int32 {
	for _, p := range aalLobePrefixes {
		if strings.HasPrefix(region, p.prefix) {
			return p.lobe
		}
	}
	return -1
}

// AALFlipPairs returns the left/right pairs of the original 116-region AAL
// atlas: region 2i-1 (left) and 2i (right) for i = 1..54 (ids up to 108;
// the vermis, 109–116, is unpaired).
func AALFlipPairs() [][2]int {
	out := make([][2]int, 0, 54)
	for i := 1; i < 108; i += 2 {
		out = append(out, [2]int{i, i + 1})
	}
	return out
}

// readAALNames parses aal.nii.txt ("<id> <name> <code>" per line).
func readAALNames(path string) (map[int]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names := map[int]string{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		fs := strings.Fields(sc.Text())
		if len(fs) < 2 {
			continue
		}
		id, err := strconv.Atoi(fs[0])
		if err != nil {
			return nil, fmt.Errorf("%s:%d: bad region id %q", path, n, fs[0])
		}
		names[id] = fs[1]
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%s: no regions", path)
	}
	return names, nil
}

// aalLUT builds the region-id → lobe-id table from region names.
func aalLUT(names map[int]string) (func(float64) int32, error) {
	lut := map[int]int32{}
	for id, name := range names {
		l := AALLobeOf(name)
		if l < 0 {
			return nil, fmt.Errorf("AAL region %d %q has no lobe", id, name)
		}
		lut[id] = l
	}
	return func(v float64) int32 { return lut[int(v)] }, nil
}
