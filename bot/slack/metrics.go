package slack

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the adapter's Prometheus instruments.
type Metrics struct {
	Commands   *prometheus.CounterVec // by kind (command, action) and outcome
	AckSeconds prometheus.Histogram   // envelope received → ack queued
	APIErrors  *prometheus.CounterVec // Slack Web API errors by method and error
	Reconnects prometheus.Counter     // socket connections after the first
	InFlight   prometheus.Gauge       // requests being handled
}

// NewMetrics creates the instruments and registers them with reg (nil: not
// registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "togather_chatops_requests_total", Help: "Slash commands and button clicks handled, by kind and outcome.",
		}, []string{"kind", "outcome"}),
		AckSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "togather_chatops_ack_seconds", Help: "Time from receiving a Socket Mode envelope to queueing its ack.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 3},
		}),
		APIErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "togather_chatops_slack_api_errors_total", Help: "Slack Web API calls that failed, by method and error.",
		}, []string{"method", "error"}),
		Reconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "togather_chatops_reconnects_total", Help: "Socket Mode connections opened after the first.",
		}),
		InFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "togather_chatops_requests_in_flight", Help: "Requests being handled now.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.Commands, m.AckSeconds, m.APIErrors, m.Reconnects, m.InFlight)
	}
	return m
}
