package dist

// HandleNumel exposes handleNumel to the layout test.
var HandleNumel = handleNumel
