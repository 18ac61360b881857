-- The note a deploy was made with (`hostctl deploy --message`, `?message=` on an archive),
-- shown in the deploy history. Nullable: earlier deploys have none.
ALTER TABLE deploys ADD COLUMN message TEXT;
