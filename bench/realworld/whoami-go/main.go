package main

import (
	"fmt"
	"net/http"
	"os"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-check" {
		st, err := os.Stat("/etc/ssl/certs/ca-certificates.crt")
		fmt.Println("whoami ok", err == nil && st.Size() > 0, os.Getuid())
		return
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h, _ := os.Hostname()
		fmt.Fprintf(w, "Hostname: %s\n", h)
	})
	_ = http.ListenAndServe(":80", nil)
}
