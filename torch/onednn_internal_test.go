package torch

// Conv2dKernel exposes conv2dKernel to the external tests.
var Conv2dKernel = conv2dKernel
