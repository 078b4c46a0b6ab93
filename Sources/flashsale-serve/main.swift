import FlashSaleCLI
import FlashSaleServer
import Glibc

// flashsale with the HTTP server linked in: `flashsale serve` execs this.
exit(CLI.main(serve: Server.run, httpExchange: HTTPCrowd.exchange))
