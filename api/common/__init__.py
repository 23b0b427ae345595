"""What every resource shares: schema building blocks, tenant-scoped service helpers, bulk
import, the problem document and JSON depth limits."""
