"""`vidcls serve`: an HTTP API and a web page that classify uploaded videos with one loaded model."""
