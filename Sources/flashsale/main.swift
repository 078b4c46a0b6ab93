import FlashSaleCLI
import Glibc

exit(CLI.main())
