package procs

import "testing"

func TestParseStat(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Stat
		wantErr bool
	}{
		{name: "plain", in: "42 (meshgate) S 7 42 42 0 -1 4194560 100 0 0 0 150 30 0 0 20 0 9 0 1 1 1",
			want: Stat{PPID: 7, Ticks: 180}},
		{name: "spaces in the name", in: "43 (nginx: worker) S 42 42 42 0 -1 0 0 0 0 0 5 6 0 0 20 0 1 0",
			want: Stat{PPID: 42, Ticks: 11}},
		{name: "short", in: "44 (x) S 1 2", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseStat([]byte(tt.in))
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("got %+v, %v; want %+v (error %v)", got, err, tt.want, tt.wantErr)
			}
		})
	}
}
