package loss

// ShapeMaps exposes DualTerm's distance maps to the tests.
var ShapeMaps = shapeMaps
