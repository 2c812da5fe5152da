from aigentflow.cli.main import main

main()
