package admin

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/meshgate/meshgate/internal/observe/record"
)

// maxTapDuration bounds one tap request.
const maxTapDuration = 10 * time.Minute

// requests answers GET /debug/requests: the recent records a filter matches (n, default 100),
// or every record of one request (id).
func requests(h *record.Hub) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var out []record.Record
		if id := r.URL.Query().Get("id"); id != "" {
			out = h.Ring().Find(id)
		} else {
			f, err := record.FilterFromQuery(r.URL.Query())
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			n, _ := strconv.Atoi(r.URL.Query().Get("n"))
			if n <= 0 || n > record.DefaultRingSize {
				n = 100
			}
			out = h.Ring().Recent(f, n)
		}
		if out == nil {
			out = []record.Record{}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	}
}

// tap answers GET /debug/tap: the records a filter matches as they happen, one JSON object a
// line, until the client goes away (or for=DURATION passes, at most 10 minutes).
func tap(h *record.Hub) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f, err := record.FilterFromQuery(r.URL.Query())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		d := maxTapDuration
		if v := r.URL.Query().Get("for"); v != "" {
			if pd, err := time.ParseDuration(v); err == nil && pd > 0 && pd < d {
				d = pd
			}
		}
		t := h.Tap(f)
		defer t.Close()
		rc := http.NewResponseController(w)
		_ = rc.SetWriteDeadline(time.Now().Add(d + 5*time.Second))
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.WriteHeader(http.StatusOK)
		_ = rc.Flush()
		enc := json.NewEncoder(w)
		end := time.NewTimer(d)
		defer end.Stop()
		for {
			select {
			case <-r.Context().Done():
				return
			case <-end.C:
				return
			case rec := <-t.Records():
				if enc.Encode(&rec) != nil || rc.Flush() != nil {
					return
				}
			}
		}
	}
}
