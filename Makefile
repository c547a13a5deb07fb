# The two commands of README.md. Everything else lives in scripts/.
.PHONY: run test

run:
	@scripts/run.sh

test:
	@scripts/test.sh
