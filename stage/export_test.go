package stage

// VP8KeyframeSize is vp8KeyframeSize, for the external tests.
var VP8KeyframeSize = vp8KeyframeSize
