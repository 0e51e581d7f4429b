package sas

import (
	"fmt"
	"slices"
	"strings"
)

// Variant is one arm of the SAS experiment: which of the recipe's three
// parts a run uses.
type Variant struct {
	Name string `json:"name"`
	// Aug is the SAS colour/blur augmentation (train --aug), STN the
	// spatial transformer (train --stn), SSL fine-tuning from the
	// contrastively pretrained encoder (train --pretrained).
	Aug bool `json:"aug"`
	STN bool `json:"stn"`
	SSL bool `json:"ssl"`
}

// Variants are the experiment's arms, in the table's order: none of the
// parts, each alone, each pair, and all three (sas).
var Variants = []Variant{
	{Name: "plain"},
	{Name: "aug", Aug: true},
	{Name: "stn", STN: true},
	{Name: "ssl", SSL: true},
	{Name: "aug+stn", Aug: true, STN: true},
	{Name: "aug+ssl", Aug: true, SSL: true},
	{Name: "stn+ssl", STN: true, SSL: true},
	{Name: "sas", Aug: true, STN: true, SSL: true},
}

// LookupVariant finds a variant by name. The parts of a name may come in
// any order and "aug+stn+ssl" is sas; "plain" and "sas" stand alone.
func LookupVariant(name string) (Variant, error) {
	n := strings.ToLower(strings.TrimSpace(name))
	var want Variant
	switch n {
	case "plain":
	case "sas":
		want = Variant{Aug: true, STN: true, SSL: true}
	default:
		for _, p := range strings.Split(n, "+") {
			switch strings.TrimSpace(p) {
			case "aug":
				want.Aug = true
			case "stn":
				want.STN = true
			case "ssl":
				want.SSL = true
			default:
				return Variant{}, fmt.Errorf("unknown variant %q (want plain, sas, or aug, stn and ssl joined by +: %s)", name, variantNames())
			}
		}
	}
	for _, v := range Variants {
		if v.Aug == want.Aug && v.STN == want.STN && v.SSL == want.SSL {
			return v, nil
		}
	}
	return Variant{}, fmt.Errorf("unknown variant %q", name)
}

func variantNames() string {
	var s []string
	for _, v := range Variants {
		s = append(s, v.Name)
	}
	return strings.Join(s, ", ")
}

// SelectVariants resolves a --variants list (names separated by commas):
// empty or "all" is every variant; otherwise the named ones in the
// table's order, without repeats.
func SelectVariants(list string) ([]Variant, error) {
	var names []string
	for _, p := range strings.Split(list, ",") {
		if p = strings.TrimSpace(p); p != "" {
			names = append(names, p)
		}
	}
	if len(names) == 0 || (len(names) == 1 && strings.EqualFold(names[0], "all")) {
		return slices.Clone(Variants), nil
	}
	chosen := map[string]bool{}
	for _, n := range names {
		if strings.EqualFold(n, "all") {
			return nil, fmt.Errorf("--variants: \"all\" cannot be combined with names")
		}
		v, err := LookupVariant(n)
		if err != nil {
			return nil, fmt.Errorf("--variants: %w", err)
		}
		chosen[v.Name] = true
	}
	var out []Variant
	for _, v := range Variants {
		if chosen[v.Name] {
			out = append(out, v)
		}
	}
	return out, nil
}

// variantIndex is v's position in Variants (len(Variants) if unknown).
func variantIndex(name string) int {
	for i, v := range Variants {
		if v.Name == name {
			return i
		}
	}
	return len(Variants)
}
