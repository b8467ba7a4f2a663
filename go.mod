module github.com/stagehand-rt/stagehand

go 1.26.0

require (
	github.com/asticode/go-astiav v0.16.0
	github.com/grafov/m3u8 v0.12.1
	golang.org/x/image v0.47.0
)

require github.com/asticode/go-astikit v0.42.0 // indirect
