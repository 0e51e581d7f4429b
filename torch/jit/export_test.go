package jit

// HandleNumel exposes handleNumel to the tests.
var HandleNumel = handleNumel
