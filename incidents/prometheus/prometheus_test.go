package prometheus_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/togather-foundation/togather-chatops/incidents/prometheus"
)

// api answers /api/v1/query in Prometheus's documented format.
func api(t *testing.T, answers map[string]string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/query" {
			http.NotFound(w, r)
			return
		}
		q := r.URL.Query().Get("query")
		for prefix, body := range answers {
			if strings.HasPrefix(q, prefix) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(body))
				return
			}
		}
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"status":"error","errorType":"bad_data","error":"parse error"}`))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func vector(v string) string {
	return `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000.1,"` + v + `"]}]}}`
}

func TestRates(t *testing.T) {
	srv := api(t, map[string]string{"sum(rate(": vector("0.07"), "histogram_quantile": vector("1.25")})
	er, p95, err := prometheus.Client{URL: srv.URL}.RequestRates(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if er != 0.07 || p95 != 1.25 {
		t.Errorf("rates = %v, %v", er, p95)
	}
}

func TestQueryEdges(t *testing.T) {
	srv := api(t, map[string]string{
		"empty":  `{"status":"success","data":{"resultType":"vector","result":[]}}`,
		"nan":    vector("NaN"),
		"matrix": `{"status":"success","data":{"resultType":"matrix","result":[]}}`,
		"junk":   `<html>`,
	})
	c := prometheus.Client{URL: srv.URL}
	for _, q := range []string{"empty", "nan", "matrix"} {
		if _, err := c.Query(context.Background(), q); !errors.Is(err, prometheus.ErrNoData) {
			t.Errorf("%s: err = %v, want ErrNoData", q, err)
		}
	}
	if _, err := c.Query(context.Background(), "junk"); err == nil || !strings.Contains(err.Error(), "non-JSON") {
		t.Errorf("junk: err = %v", err)
	}
	if _, err := c.Query(context.Background(), "unknown"); err == nil || !strings.Contains(err.Error(), "parse error") {
		t.Errorf("error answer: err = %v", err)
	}
}
