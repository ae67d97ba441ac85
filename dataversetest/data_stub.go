package dataversetest

import "net/http"

type dataset struct{ csdl []byte }

type Expr interface{}

func loadDataset(opts Options) (*dataset, error) { return &dataset{csdl: opts.CSDL}, nil }

func (s *Server) serveResource(w http.ResponseWriter, r *http.Request, rc *reqCtx, seg string) {
	writeError(w, http.StatusNotFound, "0x80060888", "Resource not found for the segment '"+seg+"'.")
}

func (s *Server) serveBatch(w http.ResponseWriter, r *http.Request) {}

func (s *Server) serveServiceDocument(w http.ResponseWriter) {}

var _ = writeAPIError
