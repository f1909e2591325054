package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"

	"github.com/sparkenv/sparkenv/planner"
)

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// lineReporter prints one plain line per finished action (and per start),
// for logs and pipes.
type lineReporter struct {
	mu sync.Mutex
	w  io.Writer
}

func (r *lineReporter) Event(e planner.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch e.Type {
	case planner.EventStart:
		fmt.Fprintf(r.w, "%s: running (%s)\n", e.Address, joinReasons(e.Reasons))
	case planner.EventFinish:
		switch e.Status {
		case planner.StatusBuilt:
			fmt.Fprintf(r.w, "%s: built in %s\n", e.Address, e.Duration.Round(time.Millisecond))
		case planner.StatusFailed:
			fmt.Fprintf(r.w, "%s: FAILED\n", e.Address)
		case planner.StatusCached:
			fmt.Fprintf(r.w, "%s: cached\n", e.Address)
		default:
			fmt.Fprintf(r.w, "%s: %s\n", e.Address, e.Status)
		}
	}
}

// jsonReporter prints one JSON object per event.
type jsonReporter struct {
	mu  sync.Mutex
	enc *json.Encoder
}

func (r *jsonReporter) Event(e planner.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.enc.Encode(e)
}

// barReporter shows a live line per running action on a terminal.
type barReporter struct {
	mu   sync.Mutex
	p    *mpb.Progress
	bars map[string]*mpb.Bar
	w    io.Writer
}

func newBarReporter(w io.Writer) *barReporter {
	return &barReporter{p: mpb.New(mpb.WithOutput(w), mpb.WithWidth(1), mpb.WithRefreshRate(120*time.Millisecond)), bars: map[string]*mpb.Bar{}, w: w}
}

func (r *barReporter) Event(e planner.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch e.Type {
	case planner.EventStart:
		b := r.p.New(1, mpb.SpinnerStyle(),
			mpb.PrependDecorators(decor.Name(e.Address, decor.WCSyncSpaceR)),
			mpb.AppendDecorators(decor.Elapsed(decor.ET_STYLE_GO), decor.Name("  "+joinReasons(e.Reasons))),
			mpb.BarFillerOnComplete("done"),
		)
		r.bars[e.Address] = b
	case planner.EventFinish:
		if b := r.bars[e.Address]; b != nil {
			if e.Status == planner.StatusBuilt {
				b.Increment()
			} else {
				b.Abort(false)
			}
		}
	}
}

func (r *barReporter) Wait() { r.p.Wait() }

func joinReasons(rs []string) string {
	if len(rs) == 0 {
		return "no cache entry"
	}
	s := rs[0]
	if len(rs) > 1 {
		s += fmt.Sprintf(" and %d more", len(rs)-1)
	}
	return s
}
