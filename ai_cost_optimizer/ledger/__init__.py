"""The transactions that hold a gateway call's rows, and the statement that writes them.

Why this exists: the gateway runs inside other people's transactions. A call's money is spent when the provider
answers, whatever the caller does next, so its usage row, budget reservation and the rows that follow must
commit on their own, before the caller commits or rolls back (`cursors.run_in_own_transaction`); yet a test's
transaction, or one that created a record the rows name, must keep them itself. And those short transactions
are on every call's path (DESIGN section 9): `cursors` keeps their connections and prepared statements between
calls, `statement` writes the rows that follow the usage row in one statement."""
