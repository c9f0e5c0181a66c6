package main

import (
	"fmt"
	"image/color"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// series is one line of a plot: a value per size.
type series struct {
	label string
	value func(Report) (float64, bool)
}

func modeValue(mode string, f func(Result) float64) func(Report) (float64, bool) {
	return func(r Report) (float64, bool) {
		for _, res := range r.Results {
			if res.Mode == mode {
				return f(res), true
			}
		}
		return 0, false
	}
}

var palette = []color.Color{
	color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}, color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
	color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff}, color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
	color.RGBA{R: 0x94, G: 0x67, B: 0xbd, A: 0xff}, color.RGBA{R: 0x8c, G: 0x56, B: 0x4b, A: 0xff},
}

// writePlots draws memory and sync time against the number of pods.
func writePlots(run Run, dir string) error {
	mib := func(f func(Result) float64) func(Result) float64 {
		return func(r Result) float64 { return f(r) / (1 << 20) }
	}
	heap := func(r Result) float64 { return r.HeapAllocBytes }
	rss := func(r Result) float64 { return r.RSSBytes }
	sync := func(r Result) float64 { return r.ActivationMillis / 1000 }
	plots := []struct {
		file, title, y string
		lines          []series
	}{
		{"memory-heap.png", "Go heap after GC", "MiB", []series{
			{"disabled", modeValue("disabled", mib(heap))}, {"dormant", modeValue("dormant", mib(heap))},
			{"active", modeValue("active", mib(heap))}, {"reference informer", modeValue("reference", mib(heap))},
		}},
		{"memory-rss.png", "Resident memory (RSS) after GC", "MiB", []series{
			{"disabled", modeValue("disabled", mib(rss))}, {"dormant", modeValue("dormant", mib(rss))},
			{"active", modeValue("active", mib(rss))}, {"reference informer", modeValue("reference", mib(rss))},
		}},
		{"sync-time.png", "Time to a synced pod collection", "seconds", []series{
			{"lazyscale: DPA created → synced", modeValue("active", sync)},
			{"reference informer: start → synced", modeValue("reference", sync)},
			{"plain paginated LIST", func(r Report) (float64, bool) { return r.PlainListMs / 1000, r.PlainListMs > 0 }},
		}},
	}
	for _, pl := range plots {
		p := plot.New()
		p.Title.Text = pl.title
		p.X.Label.Text = "pods in the cluster"
		p.Y.Label.Text = pl.y
		p.Y.Min = 0
		p.Legend.Top, p.Legend.Left = true, true
		p.Add(plotter.NewGrid())
		for i, s := range pl.lines {
			var pts plotter.XYs
			for _, r := range run.Sizes {
				if v, ok := s.value(r); ok {
					pts = append(pts, plotter.XY{X: float64(r.Pods), Y: v})
				}
			}
			if len(pts) == 0 {
				continue
			}
			line, points, err := plotter.NewLinePoints(pts)
			if err != nil {
				return err
			}
			line.Color, points.Color = palette[i%len(palette)], palette[i%len(palette)]
			line.Width = vg.Points(1.5)
			points.Shape = draw.CircleGlyph{}
			p.Add(line, points)
			p.Legend.Add(s.label, line, points)
		}
		if err := p.Save(7*vg.Inch, 4*vg.Inch, filepath.Join(dir, pl.file)); err != nil {
			return fmt.Errorf("plot %s: %w", pl.file, err)
		}
	}
	return nil
}
