"""Learning core (torch): belief networks, belief encoder, mixer, losses, replay buffer, learner."""
