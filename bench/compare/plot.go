package main

import (
	"fmt"
	"image/color"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

var colors = map[string]color.Color{
	"raftex": color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	"etcd":   color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
}

// drawPlot draws latency against throughput, one panel per workload: for
// each system its median p50 (solid) and p99 (dashed) at each client count
// (the labels), so a curve that goes right goes faster and one that goes
// up waits longer.
func drawPlot(path string, rows []row) error {
	var panels []*plot.Plot
	for _, workload := range []string{"put", "get"} {
		p := plot.New()
		p.Title.Text = map[string]string{"put": "put", "get": "linearizable get"}[workload] + ": latency against throughput"
		p.X.Label.Text = "throughput (operations/s)"
		p.Y.Label.Text = "latency (ms, log scale)"
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
		p.X.Tick.Marker = plot.TickerFunc(func(min, max float64) []plot.Tick {
			ticks := plot.DefaultTicks{}.Ticks(min, max)
			for i := range ticks {
				if ticks[i].Label != "" {
					ticks[i].Label = thousands(ticks[i].Value)
				}
			}
			return ticks
		})
		p.Legend.Top, p.Legend.Left = false, false // lower right: the curves rise to the right
		p.Add(plotter.NewGrid())
		for _, system := range []string{"raftex", "etcd"} {
			for _, pct := range []string{"p50", "p99"} {
				var xys plotter.XYs
				var labels []string
				for _, r := range rows {
					if r.Workload != workload {
						continue
					}
					f := r.Raftex
					if system == "etcd" {
						f = r.Etcd
					}
					d := f.P50
					if pct == "p99" {
						d = f.P99
					}
					if f.Throughput <= 0 || d <= 0 {
						continue
					}
					xys = append(xys, plotter.XY{X: f.Throughput, Y: float64(d) / float64(time.Millisecond)})
					labels = append(labels, strconv.Itoa(r.Clients))
				}
				if len(xys) == 0 {
					continue
				}
				line, points, err := plotter.NewLinePoints(xys)
				if err != nil {
					return err
				}
				line.Color, points.Color = colors[system], colors[system]
				line.Width = vg.Points(1.5)
				if pct == "p99" {
					line.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
					points.Shape = draw.TriangleGlyph{}
				}
				p.Add(line, points)
				p.Legend.Add(system+" "+pct, line, points)
				if pct == "p50" {
					l, err := plotter.NewLabels(plotter.XYLabels{XYs: xys, Labels: labels})
					if err != nil {
						return err
					}
					for i := range l.TextStyle {
						l.TextStyle[i].Color = colors[system]
						l.TextStyle[i].XAlign = draw.XCenter
					}
					l.Offset = vg.Point{Y: vg.Points(5)}
					p.Add(l)
				}
			}
		}
		p.X.Min = 0
		panels = append(panels, p)
	}
	width, height := 11*vg.Inch, 4.5*vg.Inch
	var canvas vg.CanvasWriterTo
	switch filepath.Ext(path) {
	case ".png":
		canvas = vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(width, height), vgimg.UseDPI(110))}
	case ".svg":
		canvas = vgsvg.New(width, height)
	default:
		return fmt.Errorf("want a .png or .svg file, got %q", path)
	}
	tiles := draw.Tiles{Rows: 1, Cols: len(panels), PadX: vg.Millimeter * 8, PadTop: vg.Millimeter * 3,
		PadBottom: vg.Millimeter * 3, PadLeft: vg.Millimeter * 3, PadRight: vg.Millimeter * 3}
	cells := plot.Align([][]*plot.Plot{panels}, tiles, draw.New(canvas))
	for i, p := range panels {
		p.Draw(cells[0][i])
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := canvas.WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
