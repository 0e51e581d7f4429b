package torch

// Conv2dKernel exposes conv2dKernel to the external tests.
var Conv2dKernel = conv2dKernel

// Conv2dWhich exposes conv2dWhich to the external tests.
var Conv2dWhich = conv2dWhich

// ConvTranspose2dWhich exposes convTranspose2dWhich to the external tests.
var ConvTranspose2dWhich = convTranspose2dWhich
