package inspect

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// metricFactory builds raftex_* metrics that share constant labels.
type metricFactory struct{ labels prometheus.Labels }

const namespace = "raftex"

func (f metricFactory) gauge(name, help string) prometheus.Gauge {
	return prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Name: name, Help: help, ConstLabels: f.labels})
}

func (f metricFactory) gaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	return prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: name, Help: help, ConstLabels: f.labels}, labels)
}

func (f metricFactory) counter(name, help string) prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help, ConstLabels: f.labels})
}

func (f metricFactory) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help, ConstLabels: f.labels}, labels)
}

// counterFunc reports the running total held in v.
func (f metricFactory) counterFunc(name, help string, v *atomic.Uint64) prometheus.CounterFunc {
	return prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help, ConstLabels: f.labels},
		func() float64 { return float64(v.Load()) })
}

func (f metricFactory) histogram(name, help string, buckets []float64) prometheus.Histogram {
	return prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Name: name, Help: help, ConstLabels: f.labels, Buckets: buckets})
}

func (f metricFactory) histogramVec(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Name: name, Help: help, ConstLabels: f.labels, Buckets: buckets}, labels)
}
