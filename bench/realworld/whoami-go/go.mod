module example.invalid/whoami

go 1.19
