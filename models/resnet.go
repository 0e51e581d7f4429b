package models

import "strconv"

// The ResNet backbone moved to models/encoder (encoder.NewResNet); this
// file keeps only the package's small helper, used by several models.

func itoa(i int) string { return strconv.Itoa(i) }
