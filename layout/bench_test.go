package layout

import (
	"fmt"
	"testing"
)

// BenchmarkCompute measures a relayout: it runs when participants join,
// leave, change attributes or change resolution, not on every frame.
func BenchmarkCompute(b *testing.B) {
	cfgs := map[string]Config{
		"grid":          {},
		"grid-featured": {Grid: &GridConfig{FeaturedParticipantAttribute: "featured", ParticipantOrderAttribute: "order"}},
		"pip":           {PiP: &PipConfig{PipParticipantAttribute: "pip"}},
	}
	for _, name := range []string{"grid", "grid-featured", "pip"} {
		for _, n := range []int{1, 4, 9, 12} {
			ps := make([]Participant, n)
			for i := range ps {
				ps[i] = Participant{ID: fmt.Sprint("p", i), Video: Size{1280, 720}, Attributes: map[string]string{"order": fmt.Sprint(n - i)}}
			}
			ps[0].Attributes["featured"] = "true"
			ps[n-1].Attributes["pip"] = "true"
			b.Run(fmt.Sprintf("%s/%d", name, n), func(b *testing.B) {
				b.ReportAllocs()
				for i := 0; i < b.N; i++ {
					if _, err := Compute(Size{1920, 1080}, ps, cfgs[name]); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
